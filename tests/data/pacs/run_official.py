"""Run aimagelab/pacscore's PACScore/RefPACScore (evaluation/pac_score/pac_score.py, unmodified) on
built features: its model and tokenizer dependencies are stubbed so that encode_text returns the
feature row of each caption; the formula code runs as published."""
import json, sys, types
import numpy as np
import torch

# stubs for the imports at the top of pac_score.py (no torchvision here; no CLIP weights needed)
tv = types.ModuleType("torchvision"); tvt = types.ModuleType("torchvision.transforms")
for n in ("Compose", "Resize", "CenterCrop", "ToTensor", "Normalize"):
    setattr(tvt, n, object)
tv.transforms = tvt
sys.modules.update({"torchvision": tv, "torchvision.transforms": tvt, "tqdm": types.SimpleNamespace(tqdm=lambda x: x)})
TEXTS = []
clip = types.SimpleNamespace(tokenize=lambda text, truncate=True: torch.tensor([[TEXTS.index(text)]]))
sys.modules["models"] = types.SimpleNamespace(clip=clip)
sys.modules["models.clip"] = clip

import importlib.util
spec = importlib.util.spec_from_file_location("pac_score", "/tmp/pacs_official/pac_score.py")
pac = importlib.util.module_from_spec(spec); spec.loader.exec_module(pac)

rng = np.random.RandomState(0)
n, d = 6, 16
image_feats = rng.randn(n, d).astype(np.float32)
captions = [f"caption {i}" for i in range(n)]
references = [[f"ref {i}.{j}" for j in range(1 + i % 3)] for i in range(n)]
all_texts = captions + [r for refs in references for r in refs]
text_feats = {t: (rng.randn(d) + (image_feats[i % n] if k < n else 0)).astype(np.float32) for k, (i, t) in enumerate(enumerate(all_texts))}
TEXTS.extend("A photo depicts " + t for t in all_texts)
table = torch.tensor(np.stack([text_feats[t] for t in all_texts]))

class Model:
    def encode_text(self, b):
        return table[b.reshape(-1)]

pac.extract_all_captions.__defaults__ = (256, 0)  # num_workers=0: no worker processes (same values)
_, pac_per, cand_feats, lens = pac.PACScore(Model(), None, image_feats, captions, "cpu", w=2.0)
_, ref_per = pac.RefPACScore(Model(), references, cand_feats, "cpu", torch.tensor(lens))
refpac = 2 * pac_per * np.array(ref_per) / (pac_per + np.array(ref_per))  # compute_metrics.py's line
json.dump({"image_feats": image_feats.tolist(), "caption_feats": [text_feats[c].tolist() for c in captions],
           "reference_feats": [[text_feats[r].tolist() for r in refs] for refs in references],
           "official": {"PAC-S": pac_per.tolist(), "RefPAC-S": refpac.tolist(),
                        "PAC-S_mean": float(np.mean(pac_per)), "RefPAC-S_mean": float(np.mean(refpac))}},
          open(sys.argv[1], "w"), indent=1)
print(np.mean(pac_per), np.mean(refpac))
