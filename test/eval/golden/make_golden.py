#!/usr/bin/env python3
"""Writes reference_tools.json: outputs of the reference implementations on synthetic inputs, for alignkit's
metric tests. Run with the reference packages installed (versions are recorded in the file):

    pip install sacrebleu==2.6.0 nltk==3.10.3 scikit-learn scipy statsmodels numpy
    python3 test/eval/golden/make_golden.py [--wordnet DIR]

--wordnet points NLTK at a WordNet 3.0 database (for example Debian's wordnet-base in /usr/share/wordnet
copied into DIR/corpora/wordnet with a lexnames file); without it the METEOR section is skipped.
Inputs are generated here from a fixed seed; no third-party text is copied.
"""
import argparse
import json
import random
import sys

WORDS = ("the a an of to in on at for with by from about over under after before this that these those it "
         "he she they we you i is was are were be been has have had do does did will would can could may "
         "might must shall should dog cat man woman child house car road city river tree book letter story "
         "time day year week night morning government company market price report study result system "
         "running ran runs walked walking walks quickly slowly happily generous generously connection "
         "connected connecting relational conditional hopeful hopefulness goodness electricity "
         "agreed agreement cats ponies caresses feed plastered motoring sing sized meeting meetings "
         "organization organizations argued arguing arguments university universal universe happy happier "
         "happiest big bigger biggest run first second third new old good bad great small large "
         "Paris London Berlin Obama Merkel EU UN NASA").split()
PUNCT = [".", ",", "!", "?", ";", ":", "'s", "-", "(", ")", '"', "&amp;", "&quot;", "$", "%"]
NUMBERS = ["3.5", "1,000", "1990-2000", "42", "7.", "2024"]
CJK = ["我爱北京天安门。", "今天天气很好，我们去公园吧！", "東京は日本の首都です。", "ひらがなとカタカナ", "中文（测试）：标点符号、句号。",
       "한국어 문장입니다.", "ＡＢＣ全角テキスト１２３"]
GERMAN = ["Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.", "Über die Brücke gehen – schön!",
          "Größe: 3,5 m² – «Zitat» …", "Das Verhältnis ist nicht gut; oder doch?"]


def sentence(rng, n):
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.08:
            out.append(rng.choice(PUNCT))
        elif r < 0.12:
            out.append(rng.choice(NUMBERS))
        else:
            w = rng.choice(WORDS)
            if rng.random() < 0.1:
                w = w.capitalize()
            out.append(w)
    s = " ".join(out)
    if rng.random() < 0.5:
        s = s.capitalize() + rng.choice([".", "!", "?", " ."])
    return s


def perturb(rng, s):
    toks = s.split()
    ops = rng.randint(0, 4)
    for _ in range(ops):
        if not toks:
            break
        r = rng.random()
        i = rng.randrange(len(toks))
        if r < 0.3:
            del toks[i]
        elif r < 0.6:
            toks[i] = rng.choice(WORDS)
        elif r < 0.8:
            j = rng.randrange(len(toks))
            k = min(len(toks), j + rng.randint(1, 4))
            block = toks[j:k]
            del toks[j:k]
            p = rng.randrange(len(toks) + 1)
            toks[p:p] = block
        else:
            toks.insert(i, rng.choice(WORDS))
    return " ".join(toks)


def corpus(seed, n):
    rng = random.Random(seed)
    refs1, refs2, hyps_a, hyps_b = [], [], [], []
    for i in range(n):
        if i % 13 == 5:
            base = rng.choice(GERMAN)
        elif i % 17 == 7:
            base = rng.choice(CJK)
        else:
            base = sentence(rng, rng.randint(3, 25))
        refs1.append(base)
        refs2.append(perturb(rng, base))
        hyps_a.append(perturb(rng, base))
        hyps_b.append(perturb(rng, perturb(rng, base)))
    # a few edge cases
    hyps_a[3] = ""
    refs2[4] = ""
    hyps_b[6] = refs1[6]
    return hyps_a, hyps_b, refs1, refs2


def sacrebleu_section():
    import sacrebleu
    from sacrebleu.metrics import BLEU, CHRF, TER
    from sacrebleu.significance import PairedTest
    hyps_a, hyps_b, r1, r2 = corpus(7, 120)
    out = {"version": sacrebleu.__version__, "hyps_a": hyps_a, "hyps_b": hyps_b, "refs": [r1, r2], "bleu": [], "sentence_bleu": [], "chrf": [], "ter": [], "paired": [], "confidence": []}
    for tok in ["13a", "intl", "char", "zh", "none"]:
        for lc in [False, True]:
            for sm, sv in [("exp", None), ("floor", None), ("add-k", 1), ("none", None)]:
                for nrefs in [1, 2]:
                    m = BLEU(tokenize=tok, lowercase=lc, smooth_method=sm, smooth_value=sv)
                    s = m.corpus_score(hyps_a, [r1, r2][:nrefs])
                    out["bleu"].append({"tokenize": tok, "lowercase": lc, "smooth_method": sm, "smooth_value": sv, "nrefs": nrefs,
                                        "score": s.score, "counts": s.counts, "totals": s.totals, "sys_len": s.sys_len, "ref_len": s.ref_len,
                                        "signature": str(m.get_signature()), "formatted": str(s)})
    for sm in ["exp", "floor", "add-k", "none"]:
        m = BLEU(tokenize="13a", smooth_method=sm, effective_order=True)
        out["sentence_bleu"].append({"smooth_method": sm, "scores": [m.sentence_score(h, [a, b]).score for h, a, b in zip(hyps_b, r1, r2)]})
    for wo in [0, 2]:
        for beta in [2, 3]:
            for ws in [False, True]:
                for lc in [False, True]:
                    for eps in [False, True]:
                        m = CHRF(word_order=wo, beta=beta, whitespace=ws, lowercase=lc, eps_smoothing=eps)
                        s = m.corpus_score(hyps_a, [r1, r2])
                        out["chrf"].append({"word_order": wo, "beta": beta, "whitespace": ws, "lowercase": lc, "eps_smoothing": eps, "score": s.score,
                                            "signature": str(m.get_signature()),
                                            "sentences": [m.sentence_score(h, [a]).score for h, a in zip(hyps_b[:40], r1[:40])]})
    for norm in [False, True]:
        for nop in [False, True]:
            for asian in [False, True]:
                for cs in [False, True]:
                    m = TER(normalized=norm, no_punct=nop, asian_support=asian, case_sensitive=cs)
                    s = m.corpus_score(hyps_a, [r1, r2])
                    out["ter"].append({"normalized": norm, "no_punct": nop, "asian_support": asian, "case_sensitive": cs, "score": s.score,
                                       "num_edits": s.num_edits, "ref_length": s.ref_length, "signature": str(m.get_signature()),
                                       "sentences": [m.sentence_score(h, [a]).score for h, a in zip(hyps_b, r1)]})
    for name, mk in [("bleu", lambda: BLEU()), ("chrf", lambda: CHRF()), ("ter", lambda: TER())]:
        for test, n in [("bs", 1000), ("ar", 2000)]:
            metric = mk()
            metric._ref_cache = metric._cache_references([r1, r2])
            pt = PairedTest([("baseline", hyps_a), ("system", hyps_b)], {name: metric}, references=None, test_type=test, n_samples=n)
            sigs, scores = pt()
            key = [k for k in scores if k != "System"][0]
            bl, sy = scores[key]
            out["paired"].append({"metric": name, "test": test, "n_samples": n, "signature": str(sigs[key]),
                                  "baseline": {"score": bl.score, "mean": None if bl.mean is None else float(bl.mean), "ci": None if bl.ci is None else float(bl.ci)},
                                  "system": {"score": sy.score, "p_value": sy.p_value, "mean": None if sy.mean is None else float(sy.mean), "ci": None if sy.ci is None else float(sy.ci)}})
        metric = mk()
        s = metric.corpus_score(hyps_a, [r1, r2], n_bootstrap=1000)
        out["confidence"].append({"metric": name, "score": s.score, "mean": float(s._mean), "ci": float(s._ci), "signature": str(metric.get_signature())})
    return out


def nltk_section(wordnet_dir):
    import nltk
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.bleu_score import sentence_bleu, corpus_bleu, SmoothingFunction
    from nltk.translate.chrf_score import sentence_chrf, corpus_chrf
    out = {"version": nltk.__version__}
    rng = random.Random(11)
    words = sorted(set(w.lower() for w in WORDS)) + ["skies", "dying", "lying", "generalizations", "oscillators", "hopping", "tanned", "falling",
        "hissing", "fizzed", "failing", "filing", "controlling", "rolling", "relational", "conditional", "rational", "valenci", "hesitanci",
        "digitizer", "conformabli", "radicalli", "differentli", "vileli", "analogousli", "vietnamization", "predication", "operator",
        "feudalism", "decisiveness", "hopefulness", "callousness", "formaliti", "sensitiviti", "sensibiliti", "triplicate", "formative",
        "formalize", "electriciti", "electrical", "hopeful", "goodness", "revival", "allowance", "inference", "airliner", "gyroscopic",
        "adjustable", "defensible", "irritant", "replacement", "adjustment", "dependent", "adoption", "homologou", "communism", "activate",
        "angulariti", "homologous", "effective", "bowdlerize", "probate", "rate", "cease", "controll", "roll", "ies", "dies", "flies",
        "sky", "news", "innings", "proceed", "exceed", "succeed", "happy", "fly", "by", "say", "generously", "logically", "biology",
        "fulli", "eed", "agreed", "feed", "bleed", "yyy", "ayy", "syzygy", "a", "is", "as", "i", "ab", "aed", "cried", "tied", "died",
        "sized", "meetings", "crying", "trying", "troubling", "troubled", "hoping", "hopped", "conflated", "conflating", "filled", "falling"]
    for _ in range(300):
        w = "".join(rng.choice("abcdefghilmnoprstuvyz") for _ in range(rng.randint(2, 11)))
        words.append(w + rng.choice(["", "s", "ed", "ing", "ies", "ational", "ness", "ful", "ly", "ement", "ize", "er", "ies", "ied", "y", "alli", "logi"]))
    out["porter"] = {mode: {w: PorterStemmer(mode).stem(w) for w in words} for mode in ["NLTK_EXTENSIONS", "ORIGINAL_ALGORITHM", "MARTIN_EXTENSIONS"]}
    hyps_a, hyps_b, r1, r2 = corpus(13, 40)
    toks = lambda s: s.split()
    bleu = []
    for i in range(0, 40, 2):
        refs, hyp = [toks(r1[i]), toks(r2[i])], toks(hyps_b[i])
        if not hyp:
            continue
        entry = {"references": refs, "hypothesis": hyp, "method": {}}
        sf = SmoothingFunction()
        for k in range(8):
            try:
                entry["method"][str(k)] = sentence_bleu(refs, hyp, smoothing_function=getattr(sf, f"method{k}"))
            except Exception as e:  # method6 asserts on zero bigram precision
                entry["method"][str(k)] = f"error: {type(e).__name__}"
        bleu.append(entry)
    out["bleu"] = bleu
    out["corpus_bleu"] = {"list_of_references": [[toks(a), toks(b)] for a, b in zip(r1, r2)], "hypotheses": [toks(h) for h in hyps_a],
                          "method": {str(k): corpus_bleu([[toks(a), toks(b)] for a, b in zip(r1, r2)], [toks(h) for h in hyps_a], smoothing_function=getattr(SmoothingFunction(), f"method{k}")) for k in [0, 1, 2, 3, 4, 7]}}
    out["chrf"] = {"pairs": [[r1[i], hyps_b[i]] for i in range(40)], "sentence": [sentence_chrf(r1[i], hyps_b[i]) for i in range(40)],
                   "corpus": corpus_chrf(r1, hyps_b), "corpus_min2_max4_beta2": corpus_chrf(r1, hyps_b, min_len=2, max_len=4, beta=2.0)}
    if wordnet_dir:
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
        WordNetCorpusReader.map_wn = lambda self, version="wordnet": None
        nltk.data.path.insert(0, wordnet_dir)
        from nltk.corpus import wordnet as wn
        from nltk.translate.meteor_score import meteor_score
        pairs = []
        rng2 = random.Random(5)
        extra = [("The cat sat on the mat", ["A feline was sitting on the rug", "The cat sat on a mat"]),
                 ("He is running quickly to the stores", ["He runs fast to the store"]),
                 ("The children were happier than the adults", ["The kids were more happy than grown-ups"]),
                 ("They bought a new automobile", ["They purchased a new car"]),
                 ("She spoke softly", ["She talked quietly", "she said it in a low voice"])]
        for hyp, refs in extra:
            pairs.append({"hypothesis": hyp.split(), "references": [r.split() for r in refs]})
        for i in range(40):
            if not hyps_b[i].split():
                continue
            pairs.append({"hypothesis": hyps_b[i].split(), "references": [r1[i].split(), r2[i].split()]})
        for p in pairs:
            p["score"] = meteor_score(p["references"], p["hypothesis"])
        out["meteor"] = {"wordnet_version": wn.get_version(), "pairs": pairs}
        syn_words = ["dogs", "ran", "better", "geese", "leaves", "happiest", "running", "cars", "buses", "axes", "was", "were", "fly",
                     "flies", "studies", "churches", "boxes", "women", "quickly", "automobile", "hopping", "meeting", "did", "saw", "best", "worse"]
        out["synonyms"] = {w: sorted(set(l.name() for s in wn.synsets(w) for l in s.lemmas())) for w in syn_words}
        out["morphy"] = {w: {p: wn._morphy(w, p) for p in "nvar"} for w in syn_words}
    return out


def sklearn_section():
    import numpy as np
    import sklearn
    from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support, accuracy_score, confusion_matrix
    rng = random.Random(3)
    a = [rng.choice([1, 2, 3, 4, 5]) for _ in range(60)]
    b = [x if rng.random() < 0.6 else rng.choice([1, 2, 3, 4, 5]) for x in a]
    out = {"version": sklearn.__version__, "kappa": {"r1": a, "r2": b}}
    for w in [None, "linear", "quadratic"]:
        out["kappa"][str(w)] = cohen_kappa_score(a, b, weights=w)
    labels = ["cat", "dog", "bird", "fish"]
    y = [rng.choice(labels) for _ in range(80)]
    p = [t if rng.random() < 0.55 else rng.choice(labels[:3]) for t in y]
    cls = {"y_true": y, "y_pred": p, "accuracy": accuracy_score(y, p), "labels": sorted(labels),
           "confusion": confusion_matrix(y, p, labels=sorted(labels)).tolist()}
    for avg in ["micro", "macro", "weighted"]:
        pr, rc, f1, _ = precision_recall_fscore_support(y, p, average=avg, zero_division=0)
        cls[avg] = {"precision": pr, "recall": rc, "f1": f1}
    pr, rc, f1, sup = precision_recall_fscore_support(y, p, labels=sorted(labels), average=None, zero_division=0)
    cls["per_class"] = {"precision": pr.tolist(), "recall": rc.tolist(), "f1": f1.tolist(), "support": sup.tolist()}
    out["classification"] = cls
    return out


def stats_section():
    import numpy as np
    import scipy
    from scipy.stats import binomtest
    from statsmodels.stats.proportion import proportion_confint
    from statsmodels.stats.inter_rater import fleiss_kappa
    out = {"numpy": np.__version__, "scipy": scipy.__version__}
    out["binomtest"] = [{"k": k, "n": n, "p": binomtest(k, n, 0.5, alternative="two-sided").pvalue} for k, n in
                        [(9, 10), (15, 20), (0, 5), (50, 100), (40, 100), (1, 1), (312, 600), (7, 30), (250, 1000)]]
    out["wilson"] = [{"x": x, "n": n, "alpha": a, "ci": list(proportion_confint(x, n, alpha=a, method="wilson"))} for x, n, a in
                     [(81, 263, 0.05), (15, 148, 0.05), (0, 20, 0.05), (1, 29, 0.05), (50, 50, 0.05), (7, 10, 0.1), (700, 1000, 0.01), (12.5, 30, 0.05)]]
    rng = random.Random(9)
    table = []
    for _ in range(25):
        row = [0] * 4
        for _ in range(6):
            row[rng.randrange(4)] += 1
        table.append(row)
    out["fleiss"] = {"table": table, "kappa": fleiss_kappa(np.array(table))}
    g = np.random.default_rng(12345)
    out["rng"] = {"seed": 12345, "raw": [str(x) for x in g.bit_generator.random_raw(4)]}
    g = np.random.default_rng(12345)
    out["rng"]["choice_100x7"] = g.choice(100, size=7).tolist()
    g = np.random.default_rng(2024)
    out["rng"]["bool_70"] = [int(x) for x in g.integers(2, size=70, dtype=bool)]
    g = np.random.default_rng(12345)
    values = [rng.random() for _ in range(50)]
    idx = g.choice(50, size=(1000, 50), replace=True)
    means = np.array(values)[idx].mean(axis=1)
    out["bootstrap_mean"] = {"values": values, "low": float(np.percentile(means, 2.5)), "high": float(np.percentile(means, 97.5)), "median": float(np.percentile(means, 50))}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wordnet", default=None)
    ap.add_argument("--out", default="test/eval/golden/reference_tools.json")
    args = ap.parse_args()
    data = {"_note": "generated by test/eval/golden/make_golden.py from synthetic inputs; values are the reference tools' outputs",
            "python": sys.version.split()[0], "sacrebleu": sacrebleu_section(), "nltk": nltk_section(args.wordnet), "sklearn": sklearn_section(), "stats": stats_section()}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
