"""Shared evaluation: BBQ bias scores (``bbq``), reward-model metrics (``reward``), NLU label accuracy (``nlu``) and
judge win rates (``judge``). Each module has pure metric functions that tests check by hand and a CLI
(``python -m common.eval.<name> --help``) that writes its results through ``RunDir``."""
