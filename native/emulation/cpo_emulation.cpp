// CPU build of cpo_kernels.cu for tests without a GPU. Exposes one entry point shaped like
// cuLaunchKernel (kernel name, grid, block, argument pointers), so the .NET side drives the
// emulated kernels through exactly the same launch code as the real ones.
#include "../cpo_kernels.cu"

#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>

namespace {

using Body = std::function<void()>;

// Copies the arguments out of the caller's pointer array, as cuLaunchKernel does.
template <typename... A, std::size_t... I>
Body bind_args(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
  std::tuple<A...> values{*static_cast<A*>(args[I])...};
  return [kernel, values] { std::apply(kernel, values); };
}

template <typename... A>
Body bind_args(void (*kernel)(A...), void** args) { return bind_args(kernel, args, std::index_sequence_for<A...>{}); }

std::mutex launch_mutex; // __shared__ is emulated with statics: one launch at a time

} // namespace

extern "C" {

// Returns 0 on success, 1 for an unknown kernel, 2 for a block size the emulation does not support.
__attribute__((visibility("default"))) int cpo_emu_launch(const char* name, unsigned grid, unsigned block, void** args) {
  Body body;
  if (!std::strcmp(name, "cpo_forward_f32")) body = bind_args(cpo_forward_f32, args);
  else if (!std::strcmp(name, "cpo_forward_bf16")) body = bind_args(cpo_forward_bf16, args);
  else if (!std::strcmp(name, "cpo_backward_f32")) body = bind_args(cpo_backward_f32, args);
  else if (!std::strcmp(name, "cpo_backward_bf16")) body = bind_args(cpo_backward_bf16, args);
  else if (!std::strcmp(name, "cpo_group")) body = bind_args(cpo_group, args);
  else return 1;
  if (block == 0 || block > 1024 || block % CPO_WARP_SIZE != 0 || grid == 0) return 2;

  std::lock_guard<std::mutex> lock(launch_mutex);
  cpo_emu::BlockState state(block);
  std::vector<std::thread> threads;
  threads.reserve(block);
  for (unsigned t = 0; t < block; ++t) {
    threads.emplace_back([&, t] {
      cpo_emu::block = &state;
      threadIdx.x = t;
      blockDim.x = block;
      gridDim.x = grid;
      for (unsigned b = 0; b < grid; ++b) {
        blockIdx.x = b;
        body();
        state.barrier.arrive_and_wait(); // the block is done before the next one reuses shared memory
      }
    });
  }
  for (auto& th : threads) th.join();
  return 0;
}

}
