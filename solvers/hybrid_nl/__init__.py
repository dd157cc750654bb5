"""``hybrid-nl``: a layer's rounding as one integer model for Leap's nonlinear solver."""
