"""Evidence runs: long trainings that check the suite's science (minutes to hours, checkpointed).

Each module is a script (`python -m disentbench.bench.evidence.NAME --help`) that writes its
figures and pictures to an output folder and prints one JSON line at the end.
"""
