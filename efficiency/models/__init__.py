"""Models: the catalog (data files), loading from a config, and dummy inputs."""
