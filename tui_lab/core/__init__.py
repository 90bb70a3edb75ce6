"""The building blocks of a run: data, models, optimizers, devices, evaluation, weights and
session storage. Nothing here trains a sweep or draws anything."""
