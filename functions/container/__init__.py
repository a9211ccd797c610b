"""The app in a container (ECS on Fargate behind an ALB): ``python -m functions.container``.

docs/operations.md, "The container path", says when to use it and how it drains.
"""
