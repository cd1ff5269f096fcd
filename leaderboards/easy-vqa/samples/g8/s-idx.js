mmbenchSamples("g8/s/idx", {"categories": {}});
