mmbenchSamples("g6/m3/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
