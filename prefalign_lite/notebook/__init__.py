"""What the notebooks use to present results: the figure style and its readability check
(:mod:`.plots`), comparison with committed numbers within tolerances (:mod:`.committed`), the check
that numbers quoted in markdown match the outputs they quote (:mod:`.quotes`), and the Colab / Binder
badges, install cells and absolute links (:mod:`.links`). Nothing else in the package imports it."""
