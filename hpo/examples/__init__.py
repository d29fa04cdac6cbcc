"""Example user trainables (`trainable: {function: "hpo.examples.functions:…"}`)."""
