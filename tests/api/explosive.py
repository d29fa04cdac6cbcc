"""A module no test may import: a spec naming it over REST must be refused unimported."""

raise RuntimeError("tests.api.explosive was imported: the API must never import spec code")
