"""The PyTorch reference embeddings: Hugging Face `BertModel`, mean pooling, L2 normalization.

This is what sentence-transformers computes for all-MiniLM-L6-v2 (Transformer -> Pooling(mean)
-> Normalize). Needs torch; used by tests/golden/regenerate.py and the live parity test.
"""

import numpy as np


def reference_embeddings(model_dir, texts, titles=None, max_length=256, batch_size=32):
  import torch
  import transformers

  tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
  model = transformers.BertModel.from_pretrained(str(model_dir)).eval()
  out = []
  with torch.no_grad():
    for s in range(0, len(texts), batch_size):
      args = (texts[s:s + batch_size],) if titles is None else (
          titles[s:s + batch_size], texts[s:s + batch_size])
      batch = tokenizer(*args, truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
      hidden = model(**batch).last_hidden_state
      mask = batch["attention_mask"].unsqueeze(-1).float()
      emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
      out.append(torch.nn.functional.normalize(emb, p=2, dim=1).numpy())
  return np.concatenate(out).astype(np.float32)
