# Thin wrapper over CMake so a fresh Debian 12 machine needs only `make run` and `make test`.
# Every target first installs the Debian packages the build needs (when run as root and missing).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
DEB_PKGS   := build-essential cmake pkg-config python3 \
              libcjson-dev libpcre2-dev libutf8proc-dev libcurl4-openssl-dev \
              libsodium-dev libyaml-dev libzstd-dev libmicrohttpd-dev iproute2 curl nodejs \
              libncurses-dev tmux chromium

.PHONY: all deps build run test asan fuzz clean

all: build

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@# npm comes with NodeSource's nodejs but is a package of its own in Debian's
	@command -v npm >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm; }

# CUDA=1 requires the CUDA backend (nvcc), CUDA=0 leaves it out; unset: built when nvcc is found.
CUDA ?=
CUDA_FLAG := $(if $(filter 1 ON on yes,$(CUDA)),-DCK_CUDA=ON,$(if $(filter 0 OFF off no,$(CUDA)),-DCK_CUDA=OFF,-DCK_CUDA=AUTO))

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CUDA_FLAG)
	cmake --build $(BUILD) -j $(JOBS)

# The bundled model (models/cake-tiny, trained on the King James Bible) continues a prompt.
run: build
	./$(BUILD)/cake run "And God said," -n 64 --temperature 0.7 --top-p 0.9

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCK_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# libFuzzer targets (clang): FUZZ_SECONDS per target, corpora under build-fuzz/corpus (the Hub's JSON
# replies are seeded from the fake Hub of the tests).
FUZZ_SECONDS ?= 60
fuzz: deps
	@# libFuzzer comes with Debian's clang (its compiler-rt)
	@command -v clang >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq clang; }
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCK_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS)
	for f in safetensors gguf config tok tok_load jinja st_index hub_json topology wire discovery openai sse; do mkdir -p build-fuzz/corpus/$$f; done
	cp models/cake-tiny/tokenizer.json build-fuzz/corpus/tok_load/
	python3 -c "import json,sys; d=json.load(open('tests/data/chat_templates/cases.json')); [open('build-fuzz/corpus/jinja/%s.jinja' % k, 'w').write(v['template']) for k, v in d['templates'].items()]"
	python3 -c "import json,sys; d=json.load(open('tests/data/jinja/cases.json')); [open('build-fuzz/corpus/jinja/lang%03d.jinja' % i, 'w').write(c['template']) for i, c in enumerate(d['cases'])]"
	cp tests/data/qwen3-s/model.safetensors build-fuzz/corpus/safetensors/
	./build-fuzz/st2gguf tests/data/qwen3-s build-fuzz/corpus/gguf/qwen3-q4_0.gguf Q4_0
	cp tests/data/qwen3moe-s/model.safetensors.index.json build-fuzz/corpus/st_index/
	cp tests/data/*/config.json build-fuzz/corpus/config/ 2>/dev/null; \
	  for d in tests/data/*/; do cp $$d/config.json build-fuzz/corpus/config/$$(basename $$d).json 2>/dev/null; done; true
	./build-fuzz/fuzz_safetensors -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build-fuzz/corpus/safetensors
	./build-fuzz/fuzz_gguf -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) -max_len=262144 build-fuzz/corpus/gguf
	./build-fuzz/fuzz_config -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/config
	CK_FUZZ_TOKENIZER=build-fuzz/data/qwen3-tiny ./build-fuzz/fuzz_tok -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/tok
	./build-fuzz/fuzz_tok_load -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) -max_len=400000 build-fuzz/corpus/tok_load
	./build-fuzz/fuzz_jinja -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build-fuzz/corpus/jinja
	./build-fuzz/fuzz_st_index -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/st_index
	python3 tests/hub_server.py corpus --data tests/data --data build-fuzz/data --out build-fuzz/corpus/hub_json
	./build-fuzz/fuzz_hub_json -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/hub_json
	printf 'w1:\n  host: \047h.local:10128\047\n  description: \047GPU\047\n  vram_bytes: 12000000000\n  tflops: 11.5\n  layers:\n    - \047model.layers.0-5\047\n    - \047model.layers.6\047\nw2: {host: \047[::1]:1\047, layers: [model.layers.7-9]}\n' > build-fuzz/corpus/topology/example.yml
	./build-fuzz/fuzz_topology -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/topology
	./build-fuzz/test_wire --corpus build-fuzz/corpus/wire
	./build-fuzz/fuzz_wire -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/wire
	printf 'CAKE\001\001AAAAAAAAAAAAAAAA' > build-fuzz/corpus/discovery/query
	printf 'CAKE\001\002AAAAAAAAAAAAAAAA\220\047\010\007\006\005\004\003\002\001\020\000\000\000\000\000\300\077\002w1\003cpu' > build-fuzz/corpus/discovery/reply
	printf '{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stop":["a","b"],"stream":true,"max_tokens":3,"prompt":"p"}' > build-fuzz/corpus/openai/chat
	./build-fuzz/fuzz_openai -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/openai
	./build-fuzz/fuzz_discovery -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) -max_len=256 build-fuzz/corpus/discovery
	printf '\003data: {"choices":[{"delta":{"content":"<think>hm</think>\\n\\nok"}}]}\r\n\r\n: c\ndata: {"usage":{"completion_tokens":2}}\n\ndata: [DONE]\n\n' > build-fuzz/corpus/sse/stream
	./build-fuzz/fuzz_sse -artifact_prefix=build-fuzz/ -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/sse

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
