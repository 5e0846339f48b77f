"""Media: what a file is by its content (sniff.py), decoding images and videos into RGB frames
(decode_image.py, decode_video.py), and turning frames into fixed-size tubelets (tubelets.py).

Pure functions of a file's bytes and the prep parameters: nothing here knows about units, shards or Ray.
"""
