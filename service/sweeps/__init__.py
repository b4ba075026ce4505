"""Sweeps: a grid over a base spec that creates experiments and compares them across seeds."""
