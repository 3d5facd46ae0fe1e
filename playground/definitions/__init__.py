"""Definitions: YAML source with locations, schemas, personas, role models, traits, validation, cards."""
