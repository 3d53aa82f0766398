"""Development analyses kept so that figures in docs/RESULTS.md can be re-run (not studies: `stsched experiment`
does not list them)."""
