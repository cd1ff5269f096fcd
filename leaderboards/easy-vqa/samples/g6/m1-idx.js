mmbenchSamples("g6/m1/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
