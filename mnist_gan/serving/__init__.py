"""What the app serves: its library of models, the grids and latents it draws, its result files and permalinks."""
