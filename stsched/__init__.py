"""stsched: spatial-temporal GPU scheduling of many DNN inference services.

`import stsched as st` gives the Python API (`stsched.api`): `st.scenario`, `st.solve`, `st.check`,
`st.simulate`, `st.adapt`, `st.bound`, `st.reconfiguration`, `st.load_instance`, `st.load_plan`, `st.save`.
They are loaded on first use, so importing the package stays cheap.
"""

__version__ = "0.1.0"

_API = ("scenario", "solve", "check", "reconfiguration", "simulate", "adapt", "bound", "load_instance", "load_plan",
        "save")


def __getattr__(name: str):
    if name in _API:
        from stsched import api

        return getattr(api, name)
    raise AttributeError(f"module 'stsched' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
