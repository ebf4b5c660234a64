"""nbval in `make test` re-executes every notebook except the method notebooks 11 and 13-17: at their
defaults (the committed run's sizes) they take about half an hour on two CPU cores, over the CI
budget. `make test-notebooks` runs nbval on them too (``PREFALIGN_NBVAL_ALL=1``); `make test`
runs them end to end at small sizes instead (tests/replication/test_method_notebooks.py)."""
import os

AT_FULL_SIZE_ONLY = {"11_dpo_baselines.ipynb", "13_spa.ipynb", "14_spa_judges_and_ablations.ipynb", "15_sera.ipynb",
                     "16_sr_dpo.ipynb", "17_dro_dpo.ipynb"}


def pytest_ignore_collect(collection_path, config):
    if collection_path.name in AT_FULL_SIZE_ONLY and not os.environ.get("PREFALIGN_NBVAL_ALL"):
        return True
    return None
