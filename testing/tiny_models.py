"""Tiny models built from configs, offline, saved like hub checkpoints.

Tests, the offline demo and benchmarks use these so that no weights are ever
downloaded; they load back through the same public functions users call
(:func:`core.models.matcher.load_matcher`, ...). Random weights: they run
every code path but recognise nothing until fine-tuned.

Example::

    from core.kit import tiny_models
    folder = tiny_models.make_tiny_siglip("/tmp/tiny-siglip")
    matcher = load_matcher(folder)
"""

from __future__ import annotations

import os
import tempfile

from . import synthetic


def _tokenizer_corpus():
    specs = synthetic.random_specs(60, seed=123)
    lines = [synthetic.describe(s, variant=v) for s in specs for v in range(3)]
    lines += [
        "a woman in a white t-shirt with a brown shoulder bag",
        "a man with a black backpack and grey jeans walking",
        "red top and blue trousers",
        "a child in a green jacket, yellow shorts, pink skirt, orange dress, purple hat",
        "a person wearing glasses and a cap, holding a handbag, riding a bicycle",
    ]
    return lines


def make_sentencepiece(folder, vocab_size=300):
    """Train a small sentencepiece model on person descriptions; returns its path."""
    import sentencepiece as spm

    os.makedirs(folder, exist_ok=True)
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(_tokenizer_corpus()))
    prefix = os.path.join(folder, "spiece")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, vocab_size=vocab_size, model_type="unigram",
        character_coverage=1.0, unk_id=2, bos_id=-1, eos_id=1, pad_id=0,
        unk_piece="<unk>", eos_piece="</s>", pad_piece="<pad>", hard_vocab_limit=False,
        minloglevel=2,
    )
    os.remove(corpus)
    os.remove(prefix + ".vocab")
    return prefix + ".model"


def make_tiny_siglip(folder, hidden_size=64, image_size=64, patch_size=8, layers=2, seed=0):
    """Save a tiny SigLIP (config, weights, tokenizer, image processor) to ``folder``."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor, SiglipTokenizer

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        spiece = make_sentencepiece(tmp)
        tokenizer = SiglipTokenizer(vocab_file=spiece, model_max_length=64)
        vocab_size = tokenizer.vocab_size
        config = SiglipConfig(
            text_config=dict(vocab_size=vocab_size, bos_token_id=tokenizer.eos_token_id, hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                             num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=64,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id),
            vision_config=dict(hidden_size=hidden_size, intermediate_size=hidden_size * 2, num_hidden_layers=layers,
                               num_attention_heads=4, image_size=image_size, patch_size=patch_size),
        )
        model = SiglipModel(config)
        image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size})
        processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    return folder


def make_tiny_clip(folder, hidden_size=32, image_size=32, patch_size=8, seed=0):
    """Save a tiny random CLIP (no learned logit bias: the sigmoid loss does not apply) to ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizerFast

    torch.manual_seed(seed)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(_tokenizer_corpus(), trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|startoftext|>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = CLIPTokenizerFast(tokenizer_object=bpe, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                  unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)
    tower = dict(hidden_size=hidden_size, intermediate_size=hidden_size * 2, num_hidden_layers=1, num_attention_heads=2,
                 projection_dim=hidden_size)
    config = CLIPConfig(text_config=dict(vocab_size=len(tokenizer), max_position_embeddings=64, **ids, **tower),
                        vision_config=dict(image_size=image_size, patch_size=patch_size, **tower),
                        projection_dim=hidden_size)
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": image_size},
                                                     crop_size={"height": image_size, "width": image_size}),
                  tokenizer=tokenizer).save_pretrained(folder)
    return folder


def make_tiny_dinov2(folder, hidden_size=32, image_size=56, patch_size=14, layers=2, seed=0):
    """Save a tiny DINOv2 backbone and its image processor to ``folder``."""
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    config = Dinov2Config(hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=2,
                          intermediate_size=hidden_size * 2, image_size=image_size, patch_size=patch_size)
    Dinov2Model(config).save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                      do_center_crop=True, image_mean=[0.485, 0.456, 0.406],
                      image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


def make_tiny_yolo(path, config="yolov8n.yaml", seed=0):
    """Save a YOLO detector with random weights, built from an Ultralytics config, to ``path`` (.pt)."""
    import torch

    from ..core.models.detector import apply_ultralytics_offline_switches, preserve_torch_threads

    torch.manual_seed(seed)

    apply_ultralytics_offline_switches(offline=True)
    from ultralytics import YOLO

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with preserve_torch_threads():
        YOLO(config, task="detect").save(path)
    return path
