"""The REST API of hpo: a thin FastAPI layer over the repository and `hpo.service`.

`api.app.create_app` builds the application; routes validate input, call the service
functions or the repository, and return the pydantic models of `api.models`. This package
is the only one that imports FastAPI.
"""
