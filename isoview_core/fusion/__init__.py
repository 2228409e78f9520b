"""Camera-pair fusion (clusterMF port): orientation, registration, transition maps, intensity, blending."""
