#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace herald::bench {

namespace {
constexpr std::uint64_t sub_count = 1u << histogram::sub_bits;
}  // namespace

std::size_t histogram::index_of(std::uint64_t value) noexcept {
  if (value < sub_count) return static_cast<std::size_t>(value);  // exact below 16
  const unsigned exp = 63u - static_cast<unsigned>(std::countl_zero(value));
  const std::uint64_t mantissa = (value >> (exp - sub_bits)) & (sub_count - 1);
  return static_cast<std::size_t>((exp - sub_bits + 1) * sub_count + mantissa);
}

std::uint64_t histogram::lowest_in(std::size_t index) noexcept {
  if (index < sub_count) return index;
  const std::uint64_t exp = index / sub_count + sub_bits - 1;
  const std::uint64_t mantissa = index % sub_count;
  return (sub_count + mantissa) << (exp - sub_bits);
}

std::uint64_t histogram::highest_in(std::size_t index) noexcept {
  if (index < sub_count) return index;
  const std::uint64_t exp = index / sub_count + sub_bits - 1;
  return lowest_in(index) + ((std::uint64_t{1} << (exp - sub_bits)) - 1);
}

void histogram::record(std::uint64_t value) {
  ++buckets_[index_of(value)];
  ++count_;
  max_ = std::max(max_, value);
  sum_ += static_cast<long double>(value);
}

void histogram::merge(const histogram& other) {
  for (std::size_t i = 0; i < bucket_count; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double histogram::mean() const noexcept {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

std::uint64_t histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 1.0);
  // The rank (1-based) of the wanted sample.
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      const std::uint64_t mid = lowest_in(i) + (highest_in(i) - lowest_in(i)) / 2;
      return std::min(mid, max_);
    }
  }
  return max_;
}

}  // namespace herald::bench
