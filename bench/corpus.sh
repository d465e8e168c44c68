# Sourced by the benchmark scripts: where the corpus generator is.
#
# The lived-in trees the benchmarks time are made by make-corpus.py, which
# the project's shared material holds beside the checkout
# (../shared/bench/make-corpus.py) and a clone does not. DARLINGS_CORPUS
# names it anywhere else. Sets CORPUS, or stops the script saying where it
# looked.
CORPUS=${DARLINGS_CORPUS:-$PWD/../shared/bench/make-corpus.py}
if [ ! -f "$CORPUS" ]; then
  echo "bench: no corpus generator at $CORPUS: set DARLINGS_CORPUS to make-corpus.py" \
    "(it comes with the project's shared material, shared/bench/, beside the checkout)" >&2
  exit 2
fi
