"""1:N identification: an index of enrolled palms (exact reference and fast large-gallery) and the decision rule."""
