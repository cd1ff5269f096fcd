mmbenchSamples("g6/m0/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
