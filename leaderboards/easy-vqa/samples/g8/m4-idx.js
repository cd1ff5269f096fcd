mmbenchSamples("g8/m4/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
