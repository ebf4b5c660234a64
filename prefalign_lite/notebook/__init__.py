"""What the notebooks use to present results: the figure style and its readability check
(:mod:`.plots`), comparison with a committed run within tolerances (:mod:`.committed`), and the
Colab / Binder badges and install cells (:mod:`.links`). Nothing else in the package imports it."""
