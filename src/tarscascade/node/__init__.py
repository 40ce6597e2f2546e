"""The node agent: a full replica fed by the cascade, answering QueryF for its host."""
