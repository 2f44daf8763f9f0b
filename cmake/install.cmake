# What `cmake --install` places and what the .deb (CPack, `make deb`) contains: the two binaries,
# the systemd units and sysusers.d entry, the commented configuration and the man pages.
# privicore-sim and the tests are never installed.
include(GNUInstallDirs)

install(FILES man/tokenbrokerd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES man/tokenbrokerctl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES systemd/tokenbroker.sysusers DESTINATION lib/sysusers.d RENAME tokenbroker.conf)

# The units name absolute paths, and the prefix is only known at install time (`--prefix`, or
# /usr when CPack builds the .deb), so they are generated then. Under /usr the layout is
# Debian's: /etc/tokenbroker and /lib/systemd/system; elsewhere both live under the prefix.
set(tb_install_code [[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(tb_etc "/etc/tokenbroker")
    set(tb_units "/lib/systemd/system")
  else()
    set(tb_etc "${CMAKE_INSTALL_PREFIX}/etc/tokenbroker")
    set(tb_units "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
  endif()
  set(CMAKE_INSTALL_FULL_BINDIR "${CMAKE_INSTALL_PREFIX}/bin")
  set(TB_CONFIG "${tb_etc}/tokenbroker.toml")
  set(TB_CREDENTIALS_DIR "${tb_etc}/credentials")
  foreach(unit tokenbroker.service tokenbroker.socket)
    configure_file("@TB_SOURCE_DIR@/systemd/${unit}.in" "@TB_BINARY_DIR@/systemd/${unit}" @ONLY)
    file(INSTALL "@TB_BINARY_DIR@/systemd/${unit}" DESTINATION "${tb_units}")
  endforeach()
  file(INSTALL "@TB_SOURCE_DIR@/etc/tokenbroker.toml" DESTINATION "${tb_etc}")
  # Secrets handed to the service by LoadCredential=: readable by root only.
  file(MAKE_DIRECTORY "$ENV{DESTDIR}${tb_etc}/credentials")
  file(CHMOD "$ENV{DESTDIR}${tb_etc}/credentials" DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE
       OWNER_EXECUTE)
]])
set(TB_SOURCE_DIR ${PROJECT_SOURCE_DIR})
set(TB_BINARY_DIR ${PROJECT_BINARY_DIR})
string(CONFIGURE "${tb_install_code}" tb_install_code @ONLY)
install(CODE "${tb_install_code}")

# The .deb. Depends come from dpkg-shlibdeps; the maintainer scripts create the user, reload
# systemd and restart a running broker on upgrade, nothing else (the service is not enabled:
# it needs a configured credential first).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tokenbroker)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "tokenbroker maintainers <maintainers@tokenbroker.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OAuth token broker for local programs")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "OAuth token broker for local programs
 tokenbrokerd holds OAuth credentials (Privicore and standard OAuth2) and hands valid bearer
 tokens to programs on the same machine over a unix socket or loopback TCP, refreshing them
 ahead of expiry. tokenbrokerctl is its command-line client.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS systemd)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles
  ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
  ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
  ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Install with DESTDIR so the units are generated for the real prefix (/usr), not the staging dir.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
include(CPack)
