"""Session 16's dev analyses of experiments.exec_vs_sim (README.md beside this file: the command behind each
figure of docs/RESULTS.md's executor-vs-simulator bullet)."""
