"""The tabular Bradley-Terry sandbox of the derivations, where every optimum is known exactly."""
