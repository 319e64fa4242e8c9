"""Video in: find clips (``discover``), read what the container says (``probe``: display size,
rotation, fps, duration, streams), and stream sampled RGB frames out of one ffmpeg pipe
(``decode``), never holding a clip in memory. ``ffmpeg_bin`` finds the ffmpeg executable (the
one ``imageio-ffmpeg`` ships, unless a system one is named); ``memory`` keeps frame buffers from
fragmenting the heap. Depends on nothing else in the package."""
