"""``perpbot optimize``: Optuna search over the AI's configuration, scored walk-forward out of sample.

- :mod:`.space`: the dimensions a trial samples and how they map onto settings;
- :mod:`.objective`: one trial's walk-forward backtest, the inner hold-out split, the final fit;
- :mod:`.study`: the study in the ledger database (Optuna RDB storage), workers, trial statistics;
- :mod:`.report`: choosing the trial, scoring the hold-out once, DSR / PBO / verdict, the report.
"""
