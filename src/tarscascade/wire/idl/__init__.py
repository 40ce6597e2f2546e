"""IDL definitions: structs and interfaces of the TARS servants tarscascade speaks."""
