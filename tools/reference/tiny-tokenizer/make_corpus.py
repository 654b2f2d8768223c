"""One-off generator of corpus.txt (kept for provenance; the committed corpus.txt is the source of truth).

Captions are drawn from small hand-written word lists with a fixed seed, plus a few lines with Unicode that
nmt_nfkc normalises (full-width letters, circled digits, ligatures, fractions) so the trained model and its
charsmap are exercised. Run: python tools/reference/tiny-tokenizer/make_corpus.py > corpus.txt
"""
import random
import sys

r = random.Random(20261)
subjects = ["a cat", "a small dog", "an old man", "a young woman", "two children", "a red fox", "a white horse",
 "a robot", "an astronaut", "a dragon", "a lighthouse", "a sailboat", "a castle", "a bowl of fruit", "a cup of coffee",
 "a vintage car", "a steam train", "a hot air balloon", "a mountain cabin", "a giant tree", "a paper lantern",
 "a glass bottle", "a bicycle", "a wooden bridge", "a city street", "a quiet village", "an owl", "a penguin",
 "a squirrel", "a burger", "a cactus", "a violin", "a chess board", "a teapot", "a butterfly", "a whale",
 "a knight in armor", "a wizard", "a tiger", "a panda", "a field of sunflowers", "a bakery", "a library",
 "a spaceship", "a submarine", "a waterfall", "a desert road", "a snowy forest", "a neon sign", "a market stall"]
verbs = ["sitting on", "standing next to", "flying over", "walking through", "floating above", "hiding behind",
 "resting under", "looking at", "running across", "dancing in", "reading near", "painted on", "glowing inside",
 "reflected in", "surrounded by", "made of", "covered with", "eating", "holding", "riding"]
objects = ["a table", "the ocean", "a crowded market", "the moon", "a pile of books", "a rainy window", "green hills",
 "a frozen lake", "the clouds", "a field of flowers", "old ruins", "a busy harbor", "tall grass", "a stone wall",
 "golden light", "morning fog", "a starry sky", "autumn leaves", "a campfire", "city lights", "pink blossoms",
 "an empty room", "a sandy beach", "ice and snow", "a copper kettle", "silver coins", "a velvet curtain"]
styles = ["oil painting", "watercolor", "pencil sketch", "digital art", "photograph", "35mm film photo",
 "studio lighting", "cinematic", "highly detailed", "soft focus", "ukiyo-e print", "pixel art", "3d render",
 "low poly", "concept art", "children's book illustration", "isometric view", "macro shot", "wide angle",
 "bokeh", "dramatic shadows", "pastel colors", "vibrant colors", "black and white", "sepia tone", "8k", "4k",
 "trending on artstation", "matte painting", "impressionist", "art nouveau", "baroque", "minimalist"]
times = ["at sunset", "at dawn", "at night", "in winter", "in spring", "on a summer afternoon", "during a storm",
 "under heavy rain", "in the year 1920", "in 2077", "at 3:45 pm", "after midnight"]
extras = ["Café au lait, naïve style.", "Zürich, Köln & Málaga.", "Smiling 😊 face.", "ＦＵＬＬＷＩＤＴＨ text ①②③.",
 "\u201cquoted\u201d words — and dashes – too…", "Price: $12.50 (50% off!)", "e-mail: someone@example.com",
 "A/B testing; x=3, y=4.", "C'est la vie, n'est-ce pas?", "UPPER lower MiXeD case", "tab\tseparated\tvalues",
 "numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000", "hashtag #art #photo", "https://example.org/image.png",
 "über schön, señor, façade, déjà vu", "ﬁne ligature ﬂow", "½ cup, ¼ inch, 2³", "Ⅻ roman numeral"]
lines = set()
while len(lines) < 700:
    parts = [r.choice(subjects), r.choice(verbs), r.choice(objects)]
    if r.random() < 0.6: parts.append(r.choice(times))
    s = " ".join(parts)
    k = r.randint(0, 3)
    if k: s += ", " + ", ".join(r.sample(styles, k))
    if r.random() < 0.3: s = s[0].upper() + s[1:]
    if r.random() < 0.5: s += "."
    lines.add(s)
out = sorted(lines) + extras
sys.stdout.write("\n".join(out) + "\n")
