mmbenchSamples("g10/s/idx", {"categories": {}});
