"""Config: the schemas, their Hydra store, the config hash and the budget."""
