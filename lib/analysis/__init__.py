"""Analyses over the engine: statistics, officer risk, tactics, explore, training, quality, debriefs."""
