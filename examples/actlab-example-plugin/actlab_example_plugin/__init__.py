"""An actlab plugin: the `noisy_softplus` activation, the `xor` data set and the `resmlp` model.

actlab imports the modules named by this distribution's entry points (pyproject.toml);
nothing here runs until then.
"""
