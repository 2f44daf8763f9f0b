// The one translation unit that compiles Asio, Asio's SSL glue and Beast
// (BOOST_*_SEPARATE_COMPILATION is set for every target in CMakeLists.txt).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
