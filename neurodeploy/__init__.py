"""neurodeploy."""
