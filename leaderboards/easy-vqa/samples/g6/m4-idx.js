mmbenchSamples("g6/m4/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
