"""The embedded world: instruction tasks with a graded gold reward, demonstrators, a simulated
rater and the world's own UltraFeedback (:mod:`.tasks`, whose names this package re-exports), and
the tiny chat model trained on it (:mod:`.tiny`)."""
from .tasks import *  # noqa: F401,F403
from .tasks import __all__  # noqa: F401
