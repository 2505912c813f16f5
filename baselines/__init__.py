"""Hand-built Keras 3 baselines: a readable file per recipe, shared blocks and training loop beside.

Recipes: cifar10 (full and short presets), malaria (fast preset), resnet2019 (the 2019 reference
configuration) and generic (a small residual net for any input shape). Keras is backend-agnostic here:
only keras layers, ops and optimizers plus numpy, so KERAS_BACKEND=jax or torch runs the same code.
"""
