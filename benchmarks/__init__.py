# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Scripts that measure Gen-SER (accuracy against baseline heads, speed, serving); see README.md here. Nothing in
`modeling_genser`, `pipelines` or `training` imports them."""
