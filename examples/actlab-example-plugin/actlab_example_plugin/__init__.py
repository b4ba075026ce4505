"""An actlab plugin: the `noisy_softplus` activation and the `xor` data set.

actlab imports the modules named by this distribution's entry points (pyproject.toml);
nothing here runs until then.
"""
