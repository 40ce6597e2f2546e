"""The registry: authoritative catalog + store + change log + QueryF servant + admin API."""
