"""The data layer: one long-format profile schema, importers from published sources, loaders of shipped data.

Quick use::

    from stsched.data import load_profile, list_datasets
    ps = load_profile("a100-mps")      # ProfileSet(name, meta, solo, corun, path)
    ps.solo.query("model == 'resnet50' and batch == 8")

See data/README.md for the schema (columns and units), every data set, provenance and licences.
"""

from stsched.data.importers import (
    GLET_MODEL_ALIASES,
    IMPORTERS,
    PARVAGPU_MODEL_ALIASES,
    PARVAGPU_MODELS,
    PARVAGPU_SHIPPED_SCENARIOS,
    GletResources,
    ImportResult,
    Importer,
    RateMix,
    import_gpulet_a100,
    import_glet_util,
    import_igniter,
    import_parvagpu,
    read_glet_slos_and_mixes,
    read_parvagpu_deployment,
    read_parvagpu_scenarios,
    run_import,
    write_table,
)
from stsched.data.loaders import (
    DATA_DIR,
    DatasetMeta,
    ProfileSet,
    data_dir,
    list_datasets,
    list_traces,
    load_models,
    load_profile,
    model_weights_mb,
    read_corun_csv,
    read_solo_csv,
    rebuild_dataset,
    trace_dir,
)
from stsched.data.profiler_import import import_profiler
from stsched.data.schema import (
    COLUMN_DOCS,
    CORUN_COLUMNS,
    MECHANISMS,
    SOLO_COLUMNS,
    validate_corun,
    validate_solo,
)

__all__ = [
    "COLUMN_DOCS", "CORUN_COLUMNS", "DATA_DIR", "GLET_MODEL_ALIASES", "IMPORTERS", "MECHANISMS",
    "PARVAGPU_MODEL_ALIASES", "PARVAGPU_MODELS", "PARVAGPU_SHIPPED_SCENARIOS", "SOLO_COLUMNS", "DatasetMeta",
    "GletResources", "ImportResult", "Importer", "ProfileSet", "RateMix", "data_dir", "import_gpulet_a100",
    "import_glet_util", "import_igniter", "import_parvagpu", "import_profiler", "list_datasets", "list_traces",
    "load_models", "load_profile", "model_weights_mb", "read_corun_csv", "read_glet_slos_and_mixes",
    "read_parvagpu_deployment", "read_parvagpu_scenarios", "read_solo_csv", "rebuild_dataset", "run_import",
    "trace_dir", "validate_corun", "validate_solo", "write_table",
]
