mmbenchSamples("g8/m3/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
