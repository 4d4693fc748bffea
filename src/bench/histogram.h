// A latency histogram with fixed logarithmic buckets (HDR-style: 16 linear sub-buckets per
// power of two, so any recorded value is reported within 1/16 of itself). Recording is O(1)
// and never allocates; percentiles come from the bucket counts, not from a sort of the samples.
// Thread ownership: one histogram per load thread, merged on the main thread after they join.
#pragma once

#include <array>
#include <cstdint>

namespace herald::bench {

class histogram {
 public:
  static constexpr unsigned sub_bits = 4;  // 16 sub-buckets per power of two
  static constexpr std::size_t bucket_count = 64u << sub_bits;

  void record(std::uint64_t value);
  void merge(const histogram& other);

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept;
  // The value under which a fraction `p` (0..1) of the samples fall: the middle of the bucket
  // holding that rank, clamped to the largest sample. 0 when empty.
  std::uint64_t percentile(double p) const;

  // Bucket arithmetic, exposed for the tests.
  static std::size_t index_of(std::uint64_t value) noexcept;
  static std::uint64_t lowest_in(std::size_t index) noexcept;
  static std::uint64_t highest_in(std::size_t index) noexcept;

 private:
  std::array<std::uint64_t, bucket_count> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace herald::bench
